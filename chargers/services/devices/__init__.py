"""Devices: alleys, piles and ports as staff registered them; whether a pile is there
(presence, `seq`); commands to piles and their acks; pile secrets, broker logins and
QR codes. The lowest domain: imports only the shared modules of services/."""
