"""Reliability tests of ``maildoctor relay``: crashes, upstream faults and abusive clients."""
