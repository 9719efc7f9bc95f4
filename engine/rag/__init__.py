"""engine.rag"""
