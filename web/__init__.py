"""The web stage: DeepBeat's pages in the browser, served by a small stdlib HTTP server.

The studio page (`deepbeat studio`) sketches a primer, steers, generates, plays and downloads beats
offline; the live page shows and steers a live session through the LiveSource interface, which the
bridge implements. Page code (HTML, CSS, JavaScript) ships in `static/`: no framework, no build step.
"""
