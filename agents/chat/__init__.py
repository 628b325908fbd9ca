"""tunesmith.agents.chat: the conversation behind `tune chat` (shared by the Textual app and the plain REPL)."""
