"""groklab.study"""
