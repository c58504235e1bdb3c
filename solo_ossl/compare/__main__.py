from solo_ossl.compare.cli import main

main()
