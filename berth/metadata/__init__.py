"""berth.metadata"""
