"""brownout.hooks"""
