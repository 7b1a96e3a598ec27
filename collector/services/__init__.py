"""What the collector does, independent of HTTP: the API's routes and the admin commands both
call these modules, one per job (enrollment, auth, ingest, alerts, reports, exposure)."""
