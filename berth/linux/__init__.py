"""berth.linux"""
