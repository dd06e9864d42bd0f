"""berth.image"""
