"""Health checks behind /status: `classify` judges one answer, `checker` asks every service at once."""
