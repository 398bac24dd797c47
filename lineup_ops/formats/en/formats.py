"""One time format on every screen (issue 15): 24-hour, to the second, with the operator's time zone shown.

The operator's zone is activated per request (dashboard.middleware.OperatorTimezoneMiddleware); "T" prints its
abbreviation. Django's English formats would otherwise show "Dec. 2, 2026, 1:05 a.m." in lists.
"""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
