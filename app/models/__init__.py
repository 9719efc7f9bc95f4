"""app.models"""
