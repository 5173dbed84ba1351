"""brownout.rules"""
