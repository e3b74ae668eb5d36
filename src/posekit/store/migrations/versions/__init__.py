"""One module per schema revision (``NNNN_what_it_does.py``)."""
