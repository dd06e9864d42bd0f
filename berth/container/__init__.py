"""berth.container"""
