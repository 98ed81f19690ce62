"""Image IO: files (:mod:`.images`, :mod:`.pngstream`), standard input and output
(:mod:`.stdio`) and the API's PIL / array conversion (:mod:`.pixels`)."""
