"""groklab.analysis"""
