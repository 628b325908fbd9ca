"""tunesmith.agents"""
