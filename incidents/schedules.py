"""The incidents app's beat schedules (name -> (task, seconds)); setup_schedules collects every app's SCHEDULES."""

SCHEDULES: dict[str, tuple[str, int]] = {
    "Detect incidents (two error windows, integration states, status pages)": ("incidents.detect", 60),
    "Evaluate incident checks": ("incidents.evaluate_checks", 60),
    "Send due notifications (outbox retries)": ("incidents.send_due_notifications", 30),
}
