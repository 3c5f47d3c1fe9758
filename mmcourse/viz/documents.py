"""(documents plots: to be written)"""
__all__: list[str] = []
