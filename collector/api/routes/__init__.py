"""The API's routes, one router per audience: door units, administrators, officials, the
health authority, operations."""
