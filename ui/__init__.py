"""The faces of patient-qa: web chat, visit sheet export and the `patient-qa` command."""
