"""Scene scripts shipped with polyalloy (installed as ``polyalloy.scenes``): each defines build(quality)."""
