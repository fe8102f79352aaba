"""Certificates (phytosanitary, veterinary, origin) issued by one country and checked by the others."""
