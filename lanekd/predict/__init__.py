"""Run trained or exported lane models on images and videos (``lanekd predict``)."""
