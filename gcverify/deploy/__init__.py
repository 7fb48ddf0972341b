"""Deploying what was verified: ``gcverify convert`` (:mod:`.command`) converts a network of
an ``.nnp`` file with registered converters in order (:mod:`.chain`), verifies it with the
matrix's case run and writes the file it checked; :mod:`.source` reads its inputs."""
