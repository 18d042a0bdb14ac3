"""$operations that are not clinical rules: bulk export and a patient's whole record."""
