"""brownout.detectors"""
