"""tunesmith.prompts"""
