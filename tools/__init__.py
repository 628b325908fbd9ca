"""tunesmith.tools"""
