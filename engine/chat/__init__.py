"""engine.chat"""
