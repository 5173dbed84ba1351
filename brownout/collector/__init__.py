"""brownout.collector"""
