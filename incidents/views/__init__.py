"""The incidents app's pages: `tracker` (the tracker, mounted under the Incident admin by incidents.admin) and
`runbooks` (the runbooks as pages, /runbooks/RB-09/, that alert annotations and the tracker link to)."""
