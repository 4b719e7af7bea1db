"""The data layer: geometries, ShowerSet (conditions + showers, streamed) and the HDF5 file format.

It knows no dataset names: a file's dataset is resolved by the layer above (calobench.datasets).
"""
