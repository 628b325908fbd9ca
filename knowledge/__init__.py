"""tunesmith.knowledge"""
