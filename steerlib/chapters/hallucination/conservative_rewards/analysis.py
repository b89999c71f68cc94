def claims(r): return []
def extra(r): return {}
