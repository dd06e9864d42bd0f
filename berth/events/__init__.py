"""berth.events"""
