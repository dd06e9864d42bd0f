"""berth.snapshot"""
