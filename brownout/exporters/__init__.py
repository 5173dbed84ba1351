"""brownout.exporters"""
