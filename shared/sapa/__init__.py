"""SAPA: the WhatsApp service desk of a civil-registration office, run as its SOP prescribes."""
