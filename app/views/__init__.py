"""app.views"""
