"""edge-deeplab: DeepLab semantic segmentation for phones, Coral/EdgeTPU boards and laptops."""
__version__ = "0.1.0"
