"""berth.shim"""
