"""groklab.train"""
