"""engine.hub"""
