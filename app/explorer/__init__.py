"""Views of the tree panel beyond the tree and the affinity: the tree scan next to the raster scan,
and the tree's export (PNG, JSON). Each module has its pure render function and a small view class."""
