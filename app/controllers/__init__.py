"""app.controllers"""
