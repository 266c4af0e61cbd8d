from maildoctor.cli.main import main

main()
