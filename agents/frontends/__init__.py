"""Front ends: the command line and its live view now; the chat and the CI gate next."""
