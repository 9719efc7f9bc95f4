"""engine.finetune"""
