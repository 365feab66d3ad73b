"""groklab.models"""
