"""brownout.breakers"""
