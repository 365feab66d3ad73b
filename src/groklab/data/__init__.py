"""groklab.data"""
